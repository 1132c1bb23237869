FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY experiments ./experiments
COPY recommendations ./recommendations
COPY feedback ./feedback
COPY manage.py ./
RUN pip install --no-cache-dir . \
    && SECRET_KEY=build python manage.py collectstatic --noinput \
    && useradd --create-home offerlab
USER offerlab
EXPOSE 8000
CMD ["gunicorn", "-c", "python:config.gunicorn", "config.wsgi:application"]
