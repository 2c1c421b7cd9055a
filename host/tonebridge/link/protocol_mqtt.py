"""pyserial URL handler module for `mqtt://` (see tonebridge.link.mqtt_url)."""

from tonebridge.link.mqtt_url import MqttSerial as Serial

__all__ = ["Serial"]
