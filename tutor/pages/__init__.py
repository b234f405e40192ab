"""Server-rendered pages for learners and teachers (Django templates + htmx). See docs/decisions/0007-pages.md."""
