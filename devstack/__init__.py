"""Everything that runs Enclose on one machine: Azurite, the SMS emulator, the local Functions host."""
