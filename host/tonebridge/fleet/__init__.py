"""The fleet (docs/fleet.md): lines on many hosts behind one API over an MQTT broker.

Module map: topics (names, payload helpers, broker URLs) -> mqtt (a connected paho client)
-> agent (`tonebridge agent`: owns lines, executes commands), remote (the front end's
switchboard: lines as the agents announce them); broker (a Mosquitto process with password
and ACL files, for tests and `make fleet`), demo (`make fleet`).
"""
