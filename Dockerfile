# syntax=docker/dockerfile:1
# Chat gateway image. Build:  docker build -t realtime-chat .
# Run:  docker run -p 8080:8080 \
#         -e ConnectionStrings__Chat="Host=db;Port=5432;Username=chat;Password=...;Database=chat" \
#         -e Chat__Auth__SigningKey="<at least 32 bytes of secret>" \
#         --stop-timeout 35 realtime-chat
# (--stop-timeout: the gateway drains and closes its sockets within the host's
# 30 s shutdown timeout; Docker's default 10 s would kill it mid-drain.)
# Another port: -e ASPNETCORE_HTTP_PORTS=9000 -p 9000:9000 (the HEALTHCHECK
# follows it). Do not set ASPNETCORE_URLS instead: it would override the port
# and leave the HEALTHCHECK asking the old one.
#
# The SDK is pinned to the one the project is built and tested with (a newer
# SDK brings new analyzer warnings, which the build treats as errors); the
# runtime follows the 10.0 line, so that a rebuild picks up its security fixes.

FROM mcr.microsoft.com/dotnet/sdk:10.0.401 AS build
WORKDIR /src
# Restore first, from the project files only, so the layer is cached until
# a project or package version changes.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY Chat.Core/Chat.Core.csproj Chat.Core/
COPY Chat.Data/Chat.Data.csproj Chat.Data/
COPY Chat.Gateway/Chat.Gateway.csproj Chat.Gateway/
RUN dotnet restore Chat.Gateway/Chat.Gateway.csproj
# The rest, including schema.sql at the root (linked into the gateway's output).
COPY . .
RUN dotnet publish Chat.Gateway/Chat.Gateway.csproj -c Release -o /app --no-restore -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS final
# curl for HEALTHCHECK (the aspnet image has none).
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app ./
# The one place the port is set: Kestrel listens on it (on every interface) and
# the HEALTHCHECK below asks it.
ENV ASPNETCORE_HTTP_PORTS=8080
EXPOSE 8080
# Non-root user provided by the image (app, uid $APP_UID).
USER $APP_UID
# /health/live answers as soon as the gateway listens, which it does before it
# has applied the schema (waiting up to about 30 s for PostgreSQL): readiness,
# not this check, says when it serves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=45s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${ASPNETCORE_HTTP_PORTS%%[;,]*}/health/live" || exit 1
ENTRYPOINT ["dotnet", "Chat.Gateway.dll"]
