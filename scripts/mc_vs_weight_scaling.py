#!/usr/bin/env python3
"""Monte-Carlo averaging vs the weight-scaling rule (Srivastava 2014, Fig. 11)."""

from kdrop.experiments.mc_vs_weight_scaling import main

if __name__ == "__main__":
    main()
