"""Git: bare mirrors (`mirrors`), ref resolution and URL validation (`refs`), the hardened
process runner (`runner`), admission of network work (`network`: address policy, limits,
connect probe), and exporting a commit's tree under quotas and content rules (`export`,
`content`).

May import: settings, errors, outbound. Repository content and URLs are hostile input here.
"""
