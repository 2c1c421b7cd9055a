# Board profiles: pins and backend choice as data (hw/wiring.md documents the same pins).
#
# A board selects its profile with the small file tonebridge.json on its filesystem:
#   {"board": "pico"}                       -> PROFILES["pico"]
#   {"board": "pico", "pwm_pin": 18}        -> the same with overrides
# load_config() returns the merged profile dict (with "board" set to the profile name).
#
# Pin keys: "pwm_pin" (tone PWM output into the reconstruction filter), "hook_pin" (hook
# relay driver, high = off-hook), "mute_pin" (tone mute, high = muted), MT8880 bus "d_pins"
# (D0-D3), "rs0_pin", "rw_pin", "cs_pin", "phi2_pin", "irq_pin", I2S "sck_pin", "ws_pin",
# "sd_pin"; "led_pin" (status LED) may be an int or a name such as "LED".
# "uart": {"id": 0, "tx": 0, "rx": 1, "baudrate": 115200} when the protocol runs on a UART
# instead of USB-CDC (None: USB-CDC / REPL stdio). "max_offhook_s": the line controller hangs
# up by itself after this long off-hook. "wifi": {"ssid", "password"} and "mqtt": {"host",
# "port", "user", "password", "keepalive", "tx_qos", "ssl", "ca"} (Wi-Fi boards: the protocol over an MQTT broker
# instead of USB-CDC, mqttlink.py; umqtt.simple must be installed on the board). "watchdog_ms" (in tonebridge.json, e.g. 5000): the
# app starts machine.WDT and feeds it once per healthy main-loop pass (off when absent);
# after Ctrl-C a timer keeps it fed for "repl_grace_s" (default 600) so mpremote can work at
# the REPL, then the watchdog resets the board back into service. "rx_adc": the ADC input of
# the line sense (the board hears its line and verifies every digit it sends; hw/
# line-interface.md), "rx_i2s" (ESP32): the I2S id of the line sense's I2S ADC (PCM1860) with
# its pins "rx_sck_pin", "rx_ws_pin", "rx_sd_pin" (the same role as "rx_adc" on rp2) and
# "rx_rate" (8000 by default), "rx_gain": the sense stage's gain, "loop_pin": the self-test
# loop relay, "mt8880_rx": true when the MT8880's receive side (IN+/IN-) hears the line through
# the hybrid (the chip's receiver verifies every digit); `null` in tonebridge.json for a board
# built without them (sends not verified).
# "flash_ms": the board's hook flash length (FLASH and the tonebridge dialect's '!'),
# 50-1500 ms, 100 by default. "country" (e.g. "us", "uk", "cept"; absent: off): on a board that
# hears its line, detect call progress with that country's tones (cptones.py,
# docs/callprogress.md).

_LINE = {"hook_pin": 14, "mute_pin": 15, "max_offhook_s": 600, "flash_ms": 100}

PROFILES = {
    "pico": {
        "mcu": "rp2040",
        "backend": "pwm_dma",
        "pwm_pin": 16,
        "rx_adc": 0,  # line sense on ADC0 (GPIO26), hw/line-interface.md
        "loop_pin": 13,  # self-test loop relay K2
        "led_pin": 25,
        "uart": None,
    },
    "pico2": {
        "mcu": "rp2350",
        "backend": "pwm_dma",
        "pwm_pin": 16,
        "rx_adc": 0,  # line sense on ADC0 (GPIO26), hw/line-interface.md
        "loop_pin": 13,  # self-test loop relay K2
        "led_pin": 25,
        "uart": None,
    },
    "picow": {
        "mcu": "rp2040",
        "backend": "pwm_dma",
        "pwm_pin": 16,
        "rx_adc": 0,  # line sense on ADC0 (GPIO26), hw/line-interface.md
        "loop_pin": 13,  # self-test loop relay K2
        "led_pin": "LED",
        "uart": None,
    },
    "pico-mt8880": {
        "mcu": "rp2040",
        "backend": "mt8880",
        "d_pins": [2, 3, 4, 5],
        "rs0_pin": 6,
        "rw_pin": 7,
        "cs_pin": 8,
        "phi2_pin": 9,
        "irq_pin": 10,
        "mt8880_rx": True,  # IN+/IN- on the line through the hybrid: the chip hears the line
        "loop_pin": 13,  # self-test loop relay K2: the chip hears itself on the test load
        "led_pin": 25,
        "uart": None,
    },
    # Raspberry Pi (Linux, CPython, RPi.GPIO, BCM numbers) driving an MT8880 directly:
    # host/tonebridge/sbc runs this firmware there (docs/sbc.md).
    "rpi-mt8880": {
        "mcu": "linux",
        "backend": "mt8880",
        "d_pins": [5, 6, 13, 19],
        "rs0_pin": 17,
        "rw_pin": 27,
        "cs_pin": 22,
        "phi2_pin": 26,
        "irq_pin": 12,
        "mt8880_rx": True,  # the chip's receiver on the line through the hybrid (docs/sbc.md)
        "loop_pin": 16,  # self-test loop relay K2
        "hook_pin": 23,
        "mute_pin": 24,
        "uart": None,
    },
    "esp32-i2s": {
        "mcu": "esp32",
        "backend": "i2s",
        "sck_pin": 26,
        "ws_pin": 25,
        "sd_pin": 22,
        "i2s_id": 0,
        "level": 0.24,  # PCM5102A 2.1 Vrms full scale: about -11 dBm per tone on the line
        "hook_pin": 32,
        "mute_pin": 33,
        # line sense into a PCM1860 I2S ADC on I2S1 (RX), hw/line-interface.md
        "rx_i2s": 1,
        "rx_sck_pin": 18,
        "rx_ws_pin": 19,
        "rx_sd_pin": 35,
        "rx_gain": 2.0,  # the sense stage U4's gain: the ADC (2.1 Vrms) clips at +2.6 dBm
        "loop_pin": 23,  # self-test loop relay K2
        "led_pin": 2,
        "uart": None,
    },
    "esp32s3-i2s": {
        "mcu": "esp32s3",
        "backend": "i2s",
        "sck_pin": 12,
        "ws_pin": 13,
        "sd_pin": 11,
        "i2s_id": 0,
        "level": 0.24,  # PCM5102A 2.1 Vrms full scale: about -11 dBm per tone on the line
        "hook_pin": 4,
        "mute_pin": 5,
        # line sense into a PCM1860 I2S ADC on I2S1 (RX), hw/line-interface.md
        "rx_i2s": 1,
        "rx_sck_pin": 15,
        "rx_ws_pin": 16,
        "rx_sd_pin": 17,
        "rx_gain": 2.0,  # the sense stage U4's gain: the ADC (2.1 Vrms) clips at +2.6 dBm
        "loop_pin": 6,  # self-test loop relay K2
        "led_pin": 48,
        "uart": None,
    },
}

for _name in PROFILES:
    for _k in _LINE:
        if _k not in PROFILES[_name]:
            PROFILES[_name][_k] = _LINE[_k]

DEFAULT_BOARD = "pico"
CONFIG_FILE = "tonebridge.json"

# keys a tonebridge.json may override, with the type each must have
_INT_KEYS = (
    "pwm_pin",
    "hook_pin",
    "mute_pin",
    "rs0_pin",
    "rw_pin",
    "cs_pin",
    "phi2_pin",
    "irq_pin",
    "sck_pin",
    "ws_pin",
    "sd_pin",
    "i2s_id",
    "i2s_rate",
    "max_offhook_s",
    "watchdog_ms",
    "repl_grace_s",
    "relay_settle_ms",
    "output_settle_ms",
    "flash_ms",
    "rx_adc",
    "rx_i2s",
    "rx_sck_pin",
    "rx_ws_pin",
    "rx_sd_pin",
    "rx_rate",
    "loop_pin",
)
FLASH_RANGE = (50, 1500)  # dialstring.FLASH_MIN_MS, FLASH_MAX_MS


# parts a board may be built without: null in tonebridge.json turns them off
_OPTIONAL_KEYS = ("rx_adc", "rx_i2s", "loop_pin", "mt8880_rx")


class ConfigError(ValueError):
    pass


def _check_net(key, v):
    """ "wifi": {"ssid", "password"}; "mqtt": {"host", "port", "user", "password", "keepalive",
    "tx_qos", "ssl", "ca"}."""
    if v is None:
        return
    if not isinstance(v, dict):
        raise ConfigError("%s must be an object" % key)
    need = "ssid" if key == "wifi" else "host"
    if not isinstance(v.get(need), str) or not v.get(need):
        raise ConfigError("%s.%s must be a non-empty string" % (key, need))
    if key == "mqtt" and v.get("tx_qos", 0) not in (0, 1):
        raise ConfigError("mqtt.tx_qos must be 0 or 1")
    if key == "mqtt" and v.get("ssl", False) not in (True, False):
        raise ConfigError("mqtt.ssl must be true or false")
    if key == "mqtt" and "ca" in v:
        if not isinstance(v["ca"], str) or not v["ca"]:
            raise ConfigError("mqtt.ca must be the path of a DER certificate on the board")
        if v.get("ssl") is not True:
            raise ConfigError("mqtt.ca needs mqtt.ssl true")
    for k in ("port", "keepalive"):
        if k in v and (not isinstance(v[k], int) or isinstance(v[k], bool) or v[k] <= 0):
            raise ConfigError("%s.%s must be a positive integer" % (key, k))


def profile(name, overrides=None):
    """The profile dict for board `name` (a copy) with `overrides` applied and checked."""
    if name not in PROFILES:
        raise ConfigError("unknown board '%s' (known: %s)" % (name, ", ".join(sorted(PROFILES))))
    p = {}
    for k in PROFILES[name]:
        v = PROFILES[name][k]
        p[k] = list(v) if isinstance(v, list) else v
    p["board"] = name
    if overrides:
        for k in overrides:
            if k == "board":
                continue
            v = overrides[k]
            if v is None and k in _OPTIONAL_KEYS:
                p[k] = None  # a board built without that part (no receive path, no loop relay)
                continue
            if k in _INT_KEYS and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ConfigError("%s must be a non-negative integer" % k)
            if k in ("wifi", "mqtt"):
                _check_net(k, v)
            if k == "country" and v is not None:
                from tonebridge_fw.cptones import COUNTRIES

                if v not in COUNTRIES:
                    raise ConfigError(
                        "country must be one of %s (call progress tones)"
                        % ", ".join(sorted(COUNTRIES))
                    )
            if k == "flash_ms" and not FLASH_RANGE[0] <= v <= FLASH_RANGE[1]:
                raise ConfigError("flash_ms must be within %d-%d ms" % FLASH_RANGE)
            if k == "d_pins" and (not isinstance(v, list) or len(v) != 4):
                raise ConfigError("d_pins must be a list of 4 pin numbers")
            p[k] = v
    return p


def load_config(path=CONFIG_FILE):
    """Read the board's tonebridge.json and return its profile (default board if absent)."""
    import json

    try:
        f = open(path)
    except OSError:
        return profile(DEFAULT_BOARD)
    try:
        try:
            data = json.loads(f.read())
        except ValueError:
            raise ConfigError("%s is not valid JSON" % path)
    finally:
        f.close()
    if not isinstance(data, dict):
        raise ConfigError("%s must hold a JSON object" % path)
    return profile(data.get("board", DEFAULT_BOARD), data)
