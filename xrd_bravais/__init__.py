"""The ``xrd-bravais`` command: the one place that registers every subcommand.

The top layer: it imports the builder, the grader, the baselines and the starter
kit, and none of them imports it.
"""
