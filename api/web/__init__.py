"""The web layer: the Flask app factory, JSON routes, the console, error responses and authentication."""
