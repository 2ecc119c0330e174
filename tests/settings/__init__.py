"""Tests of rotator.settings: each rule of the environment, the sinks' and the workspaces file's."""
