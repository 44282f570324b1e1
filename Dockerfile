# Builds the standin server into a small image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/standin . && mkdir -p /out/data /out/keys

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/standin /standin
# The embedded database (used when MONGODB_URI is unset) writes here.
COPY --from=build --chown=nonroot:nonroot /out/data /data
# The audit key's home when it is kept apart from the data (a volume).
COPY --from=build --chown=nonroot:nonroot /out/keys /keys
ENV STANDIN_ADDR=0.0.0.0:8080 \
    STANDIN_DATA_DIR=/data
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/standin"]
