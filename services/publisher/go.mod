module github.com/heraldhq/herald/services/publisher

go 1.26.0
