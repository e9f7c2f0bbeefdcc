"""Built-in department actions, each a small plugin module like a third party would write."""
