"""The peers' backend app: Debian's python3-flask, one process per app under systemd.
Its message, address and port come from the unit's environment."""
import os

from flask import Flask

app = Flask(__name__)
MESSAGE = os.environ["APP_MESSAGE"]


@app.route("/")
def index():
    return MESSAGE


if __name__ == "__main__":
    app.run(host=os.environ["APP_BIND"], port=int(os.environ["APP_PORT"]))
