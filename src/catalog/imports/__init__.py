"""Bulk import (CSV, JSON Lines) as background jobs, and the streamed export."""
