"""Tests of the bundled ProjectManager API emulator (rotator.emulator)."""
