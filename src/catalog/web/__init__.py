"""The analytics dashboard: a server-rendered page and its bundled script and styles."""
