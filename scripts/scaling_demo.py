#!/usr/bin/env python3
"""The two scaling rules in numbers: inverted vs weight-scaled dropout."""

from kdrop.experiments.scaling_demo import main

if __name__ == "__main__":
    main()
