"""Archive jobs: `vidsort classify ... --out PATH [--resume] [--engine local|ray]`."""
