"""``python -m sessionstream serve APP [uvicorn options]``: see sessionstream.server.cli."""

from sessionstream.server.cli import main

if __name__ == "__main__":
    main()
