"""Tests of rotator.locks: a contract every lock meets, then each lock's own."""
