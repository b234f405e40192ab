"""The WSGI entry point (runserver, gunicorn, uWSGI).

After Django is set up, the URL configuration is loaded (it imports every API and page module and builds their
schemas) and every object alive then is moved to the collector's permanent generation (`gc.freeze`). A full
collection walks every tracked object while holding the interpreter lock; without this it walked the ~160,000
objects of a freshly started serving process each time (about 80 ms on the development machine, a pause for
every request in flight). Objects frozen this way are still freed by reference counting; only the cycle
collector skips them, so nothing that startup leaves behind is lost.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
application = get_wsgi_application()


def _settle() -> None:
    from django.conf import settings
    from django.urls import get_resolver

    if not settings.TUTOR_GC_FREEZE:
        return
    get_resolver().url_patterns  # noqa: B018 - imports every view module, as the first request would
    gc.collect()
    gc.freeze()


_settle()
