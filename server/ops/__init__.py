"""What an operator watches: Prometheus metrics (`metrics.py`), the request middleware
that feeds them and gives each request its id (`middleware.py`), and JSON logs
(`logs.py`)."""
