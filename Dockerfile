FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY matcher ./matcher
COPY api ./api
COPY workers ./workers
COPY seed ./seed
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["gunicorn", "-w", "2", "-b", "0.0.0.0:8000", "api.web.wsgi:app"]
