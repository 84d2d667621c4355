"""The web console: static pages served by the user API at `/`, talking only to the public `/v1` API.

Nothing here knows a domain rule: the pages call the same endpoints as the SDK, with the
key a person types, kept in the tab's session storage.
"""
