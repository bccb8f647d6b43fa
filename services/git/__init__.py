"""Git: bare mirrors, ref resolution, listing refs and commits, exporting a commit's tree,
and the hardened process runner every git command goes through.

May import: settings, errors. Repository content and URLs are hostile input here.
"""
