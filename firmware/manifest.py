# Freeze the tonebridge firmware into a custom MicroPython build (its bytecode then runs from
# flash: no .py/.mpy files in /lib, ~15 KB more heap free). From a MicroPython checkout:
#
#   make -C ports/rp2 BOARD=RPI_PICO submodules
#   make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/tonebridge/firmware/manifest.py
#   (ESP32: idf.py -C ports/esp32 -D MICROPY_BOARD=ESP32_GENERIC \
#                  -D MICROPY_FROZEN_MANIFEST=/path/to/tonebridge/firmware/manifest.py build)
#
# Flash the result, then put only main.py and tonebridge.json on the filesystem
# (`tonebridge deploy` does more than that: a /lib/tonebridge_fw it copies is shadowed by the
# frozen one, since ".frozen" comes before "/lib" on sys.path). The build compiles the viper
# kernels (synth_viper.py) for the port's own architecture.
#
# The port's default frozen modules stay in. A board with its own manifest (RPI_PICO_W:
# networking, aioble) needs "$(BOARD_DIR)/manifest.py" here instead of the port's.
include("$(PORT_DIR)/boards/manifest.py")

# firmware/tonebridge_fw/**/*.py -> frozen package tonebridge_fw (path relative to this file)
package("tonebridge_fw")
