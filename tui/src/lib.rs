//! skein-tui: not built yet. The live terminal dashboard (ratatui) arrives with its own issue.
