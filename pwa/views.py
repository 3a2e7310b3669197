"""What the installable app is made of: the offline page (the manifest and service worker join
it with the offline-first work)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def offline(request: HttpRequest) -> HttpResponse:
    return render(request, "pwa/offline.html")
