"""The HTML report and its charts: data in, text out."""
