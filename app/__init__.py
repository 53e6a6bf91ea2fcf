"""The m23 application: command line, video I/O, inference engines, the player."""
