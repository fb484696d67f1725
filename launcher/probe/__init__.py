"""``launch probe``: start profiles, fire concurrent bursts, judge them against the expectation model."""
