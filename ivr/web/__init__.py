"""The staff console (`ivr web`): a Flask application for managers, operators and the telecom admin.

app.py builds the application (sessions, CSRF, roles, languages); auth.py, pages_live.py, pages_work.py and
pages_lists.py hold the pages, each calling the same domain functions as the CLI; server.py serves it with
gevent's WSGI server; wsgi.py is the entry for gunicorn's gevent workers; i18n.py holds its words.
"""
