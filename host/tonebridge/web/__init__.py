"""The dashboard (docs/dashboard.md): server-rendered pages (Jinja2) with a little
JavaScript, behind the APIs' own credentials.

Module map: session (who is asking: HTTP Basic or the login form's cookie), events (the
switchboard's events to each page, as server-sent events), recordings (a call's recordings,
their analysis and spectrograms), views (the routes). api.app includes `views.router`; no
module here is imported by the api package otherwise.
"""
