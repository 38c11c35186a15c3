# syntax=docker/dockerfile:1
# Chat gateway image. Build:  docker build -t realtime-chat .
# Run:  docker run -p 8080:8080 \
#         -e ConnectionStrings__Chat="Host=db;Port=5432;Username=chat;Password=...;Database=chat" \
#         -e Chat__Auth__SigningKey="<at least 32 bytes of secret>" \
#         realtime-chat

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files only, so the layer is cached until
# a project or package version changes.
COPY Directory.Build.props Directory.Packages.props ./
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
ENV ASPNETCORE_URLS=http://+:8080
EXPOSE 8080
# Non-root user provided by the image (app, uid $APP_UID).
USER $APP_UID
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health/live || exit 1
ENTRYPOINT ["dotnet", "Chat.Gateway.dll"]
