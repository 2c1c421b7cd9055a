# Tone backends. Each module holds one backend class driven by the player:
#   start(plan), service(), position(), abort(), close()
# Backends are imported lazily by tonebridge_fw.board.make_board so a board only imports the
# one its profile names (an ESP32 never imports the rp2 module).

# profile "backend" -> (module, class)
REGISTRY = {
    "pwm_dma": ("tonebridge_fw.backends.pwm_dma_rp2", "PwmDmaBackend"),
    "i2s": ("tonebridge_fw.backends.i2s_dac", "I2SBackend"),
    "mt8880": ("tonebridge_fw.backends.mt8880", "MT8880Backend"),
}
