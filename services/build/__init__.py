"""Build: what runs on the Ferry server for a release — local hooks and the packaged artifact.

May import: git (the exported tree, the off-loop guard), settings, errors.
"""
