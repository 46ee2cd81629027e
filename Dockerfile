# One image for every node of the hierarchy and for the idr CLI (docker-compose.yml runs it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The project, installed once (not editable): gunicorn serves each node, no dev tools.
COPY pyproject.toml README.md ./
COPY idcore ./idcore
COPY resolver ./resolver
COPY secondary_nodes ./secondary_nodes
COPY clients ./clients
COPY docker ./docker
RUN pip install . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin idr \
    && mkdir -p /data/keys \
    && chown -R idr:idr /data

USER idr
ENV IDR_DATA_DIR=/data \
    IDR_TOPOLOGY=/app/docker/topology.toml \
    IDR_HOST=0.0.0.0
VOLUME ["/data"]
EXPOSE 8000 8001 8101 8102 8103 8104 8105 8106

# Written in Python: the image has no curl. Compose repeats it with its own timings.
HEALTHCHECK --interval=5s --timeout=4s --start-period=5s --retries=12 \
    CMD ["python", "-m", "idcore.healthcheck"]

# IDR_NODE names the node; secondary nodes run `python -m secondary_nodes`.
CMD ["python", "-m", "resolver"]
