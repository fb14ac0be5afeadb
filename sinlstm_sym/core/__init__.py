"""Foundations every other package uses: argument checks, output files written all or nothing, device
contexts, progress heartbeats and the errors raised inside MXNet's callbacks."""
