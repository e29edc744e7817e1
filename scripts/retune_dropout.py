#!/usr/bin/env python3
"""Early and late dropout added to the main job's CNN with kdrop.add_dropout."""

from kdrop.experiments.retune_dropout import main

if __name__ == "__main__":
    main()
