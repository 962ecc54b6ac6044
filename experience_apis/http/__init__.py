"""The HTTP experience API: app factory, problems, auth, one router per resource.

Run it with ``uvicorn --factory experience_apis.http.app:create_app``.
"""
