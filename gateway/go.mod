module github.com/heraldhq/herald/gateway

go 1.26.0
