"""What students receive with the public files: README, notebook, example script.

The kit's files arrive with the starter-kit issue.
"""
