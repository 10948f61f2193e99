"""Tests of publishing: the fake Hub itself and `molspec.publish.hub.push` against it."""
