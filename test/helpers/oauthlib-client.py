"""An agent's own OAuth client in Python (requests-oauthlib, from Debian), run by the login capture
test through keyway (HTTPS_PROXY, REQUESTS_CA_BUNDLE): a client-credentials login, a call with its
token, a refresh with the refresh token it is given, and a call with the new token. Prints what the
client holds (its token dicts) and the statuses, as JSON: the test checks they are placeholders."""

import json
import os

from oauthlib.oauth2 import BackendApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

token_url = os.environ["TOKEN_URL"]
client_id = os.environ["CLIENT_ID"]
client_secret = os.environ["CLIENT_SECRET"]
resource = os.environ["RESOURCE_URL"]
auth = HTTPBasicAuth(client_id, client_secret)

backend = OAuth2Session(client=BackendApplicationClient(client_id=client_id))
issued = backend.fetch_token(token_url=token_url, auth=auth, scope=["api"])
statuses = [backend.get(resource, timeout=30).status_code]

session = OAuth2Session(client_id, token={"access_token": "unused", "token_type": "Bearer", "refresh_token": os.environ["REFRESH_TOKEN"]})
refreshed = session.refresh_token(token_url, auth=auth)
statuses.append(session.get(resource, timeout=30).status_code)

print(json.dumps({"client_credentials": dict(issued), "refreshed": dict(refreshed), "statuses": statuses}))
