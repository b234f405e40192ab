"""The WSGI entry point (runserver, gunicorn, uWSGI).

After Django is set up, the URL configuration is loaded (it imports every API and page module and builds their
schemas) and every object alive then is moved to the collector's permanent generation (`gc.freeze`). A full
collection walks every tracked object while holding the interpreter lock; without this it walked the ~160,000
objects of a freshly started serving process each time (about 80 ms on the development machine, a pause for
every request in flight). Objects frozen this way are still freed by reference counting; only the cycle
collector skips them, so nothing that startup leaves behind is lost.

The math libraries' thread pools (OpenBLAS/MKL under numpy, OpenMP under torch) are limited to
`TUTOR_WEB_MATH_THREADS` threads (1 by default; 0 leaves them as they are). A serving process decides for many
requests at once, each with small products (a belief times a plan's vectors); a pool as wide as the machine per
product only makes those threads fight for the cores the other requests need: on a busy two-core machine the
`pomdp` decision's product took 6 ms at the median with two BLAS threads and 0.1 ms with one.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
application = get_wsgi_application()


def _settle() -> None:
    from django.conf import settings
    from django.urls import get_resolver

    threads = settings.TUTOR_WEB_MATH_THREADS
    if threads > 0:
        from threadpoolctl import threadpool_limits

        # Libraries loaded later (torch's OpenMP) read the variables when they load; those loaded already
        # (numpy's BLAS) are limited now.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)
        threadpool_limits(limits=threads)
    if not settings.TUTOR_GC_FREEZE:
        return
    get_resolver().url_patterns  # noqa: B018 - imports every view module, as the first request would
    gc.collect()
    gc.freeze()


_settle()
