# Offerlab developer commands. `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SERVE ?= 1
PORT ?= 8000
# Local runs are development runs: plain HTTP on loopback, a generated secret key.
export DEBUG ?= 1

.PHONY: install demo test lint format serve worker beat bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py demo
ifeq ($(SERVE),1)
	@echo "Serving the admin on http://127.0.0.1:$(PORT)/admin/ (Ctrl-C to stop)"
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT) --noreload
endif

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

serve: install
	$(BIN)/gunicorn -c python:config.gunicorn config.wsgi:application --bind 127.0.0.1:$(PORT)

worker: install
	$(BIN)/celery -A config.celery:app worker --loglevel=INFO

beat: install
	$(BIN)/celery -A config.celery:app beat --loglevel=INFO

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
