//! Exporters: table, JSON, CSV, Markdown, HTML (to be written).
