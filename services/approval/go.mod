module github.com/heraldhq/herald/services/approval

go 1.26.0
