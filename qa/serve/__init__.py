"""The faces: the command line, the page, the JSON API, and what they share."""
