FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# gcc compiles the model's re-ranker to machine code once per trained model (api/domain/compiled_trees.py)
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY matcher ./matcher
COPY api ./api
COPY workers ./workers
COPY seed ./seed
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["gunicorn", "-w", "2", "-b", "0.0.0.0:8000", "api.web.wsgi:app"]
