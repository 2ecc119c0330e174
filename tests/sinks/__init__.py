"""Tests of rotator.sinks: a contract every backend meets, then each backend's own."""
