"""One ``APIRouter`` per resource, included by ``experience_apis.http.app``."""
