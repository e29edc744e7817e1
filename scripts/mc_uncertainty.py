#!/usr/bin/env python3
"""MC-dropout uncertainty on digits (Gal & Ghahramani 2016): a rotated "1",
out-of-distribution detection and calibration."""

from kdrop.experiments.mc_uncertainty import main

if __name__ == "__main__":
    main()
